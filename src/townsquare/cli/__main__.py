"""``python -m townsquare.cli`` runs the command line (the same as ``townsquare``)."""
from townsquare.cli import main

main()
