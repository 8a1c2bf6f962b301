"""The one owner of the user's repository: experiment folders, amlvc.lock, the secrets file, the crash-safe commit."""
