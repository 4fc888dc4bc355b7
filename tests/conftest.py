import os

import pytest
import torch

# nbval kernels inherit this: every notebook under test runs its quick profile.
os.environ["REGKIT_PROFILE"] = "quick"

# Every test that takes the `device` fixture runs on the CPU and, where available, on CUDA.
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)
