"""The web app's user interface: one module per tab, plus shared pieces.

- `layout`: the page; `TABS` lists the tab modules (each has `TITLE` and `create_tab(ctx)`)
- `tabs/`: one module per tab (generate, experiments, sketch, forward, vae, attention, clip);
  the two largest keep their handlers beside them (`experiment_handlers`, `clip_handlers`)
- `common`: `AppContext`, `run_engine` (every model call of a handler), `bind` (a handler with
  its outputs by name), error reporting, image components
- `stepviews`: the reusable step views (`StepViews.build()`, `views.render(RunView.of(trace))`)
- `architecture`: the clickable strip prompt → tokenizer → text encoder → UNet → VAE
- `limits`, `bad_inputs`: what the app accepts, and its answer to every kind of bad input
"""
