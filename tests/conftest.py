import os

# nbval kernels inherit this: every notebook under test runs its quick profile.
os.environ["REGKIT_PROFILE"] = "quick"
