"""Single tickets (client Jeeves Consumer Services), one or a sheet of them."""
