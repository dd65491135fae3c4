"""The ML tests train small networks: one torch thread is several times faster than many on a shared CPU."""

import importlib.util

import pytest


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    if importlib.util.find_spec("torch") is None:
        yield
        return
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
