"""`python -m fashiongan` runs the project's console command."""

from fashiongan.cli import main

if __name__ == "__main__":
    main()
