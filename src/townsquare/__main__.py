"""``python -m townsquare`` runs the command line (the same as ``townsquare``)."""
from townsquare.cli import main

# Guarded: a spawned child process (the server's fast tier, ``embed.fastproc``) imports the
# main module again, and must not run the command line a second time.
if __name__ == "__main__":
    main()
