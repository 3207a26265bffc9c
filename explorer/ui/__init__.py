"""The web app's user interface: one module per tab, plus shared pieces.

- `layout`: the page; `TABS` lists the tab modules (each has `TITLE` and `create_tab(ctx)`)
- `common`: `AppContext`, CSS, error reporting, image components
- `stepviews`: the reusable step views (`StepViews.build()`, `views.render(RunView.of(trace))`)
- `architecture`: the clickable strip prompt → tokenizer → text encoder → UNet → VAE
- `generate`: the Generate tab
"""
