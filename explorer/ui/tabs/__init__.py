"""One module per tab of the page: each has `TITLE` and `create_tab(ctx)`."""
