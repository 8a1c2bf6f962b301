"""Everything that talks to a workspace: pull, push and its plan, status, restore, check; results, never prints."""
