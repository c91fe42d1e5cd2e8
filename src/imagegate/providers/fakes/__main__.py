"""``python -m imagegate.providers.fakes <kind> [--port …]``: one fake, in the foreground."""

from imagegate.providers.fakes.server import main

main()
