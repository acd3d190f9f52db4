"""postscheduler: publish a campaign's posts to Mastodon-compatible servers on time, exactly once.

The public surface is deliberately small; the command line (``postscheduler``) is the main
interface. Submodules are imported lazily so that ``postscheduler --help`` stays fast.
"""

__version__ = "0.1.0.dev0"

__all__ = ["__version__"]
