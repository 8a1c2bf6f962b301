"""Documents and files: normalize and its inverse, layout XML, column pickers, secrets, web-service definitions."""
