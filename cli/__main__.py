"""``python -m torchtransfer_cli`` is the ``torchtransfer`` command."""

from torchtransfer_cli.app import main

main()
