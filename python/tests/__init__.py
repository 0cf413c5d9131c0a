"""spillway tests (run: python3 -m unittest discover -s tests -t .)"""
