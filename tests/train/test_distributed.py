"""DDP under torchrun (two CPU processes, gloo): the same training as one process with the whole batch."""
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

import pixelcnn

COMMON = ["train", "--model", "gated_pixelcnn", "--n-layers", "2", "--hidden", "4", "--data", "digits",
          "--class-conditional", "--max-steps", "3", "--log-every", "1", "--eval-images", "20", "--ema-decay", "none",
          "--sample-images", "0", "--no-progress", "--no-tensorboard", "--threads", "1",
          "--precision", "fp32"]   # the equality below is float32 arithmetic; bf16 rounds batch 8 and 2 x 4 apart


@pytest.mark.skipif(shutil.which("torchrun") is None and not torch.distributed.is_available(),
                    reason="torch.distributed is not available")
def test_two_processes_train_like_one_with_the_global_batch(tmp_path):
    single, double = tmp_path / "single", tmp_path / "double"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "pixelcnn", *COMMON, "--batch-size", "8", "--out", str(single)],
                   check=True, capture_output=True, env=env, timeout=300)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", "29517", "-m", "pixelcnn", *COMMON, "--batch-size", "4",
                           "--out", str(double)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 processes" in done.stdout                                    # said once, by process 0
    # Process r takes images r*4 .. r*4+3 of the same global batch of 8; DDP averages the gradients.
    a, b = pixelcnn.load(single / "model").state_dict(), pixelcnn.load(double / "model").state_dict()
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=1e-4, atol=1e-6), key
    losses = lambda run: [json.loads(line)["loss_nats"] for line in open(run / "metrics.jsonl")
                          if '"train"' in line]
    assert losses(single) == pytest.approx(losses(double), rel=1e-5)      # the logged loss is the global mean
