"""The commands that need no workspace: init, import, export, normalize and verify."""
