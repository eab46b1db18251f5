"""What runs inside the image: ``training`` (the `train` command) and ``serving`` (`serve`)."""
