"""Sample captures of the two cores (README.md) and the script that records them (make.py)."""
