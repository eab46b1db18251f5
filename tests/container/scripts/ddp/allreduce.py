"""A distributed script as AWS's PyTorch images run them: init_process_group over env://, the rank
from torchrun's RANK or else from the host's place in SM_HOSTS. Every process adds rank + 1; rank 0
writes the sum and how it was launched."""

import json
import os

import torch
import torch.distributed as dist

hosts = json.loads(os.environ["SM_HOSTS"])
rank = int(os.environ.get("RANK", hosts.index(os.environ["SM_CURRENT_HOST"])))
world_size = int(os.environ.get("WORLD_SIZE", len(hosts)))
dist.init_process_group("gloo", init_method="env://", rank=rank, world_size=world_size)
total = torch.tensor([rank + 1.0])
dist.all_reduce(total)
if rank == 0:
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "allreduce.json"), "w") as f:
        json.dump(
            {
                "sum": total.item(),
                "world_size": world_size,
                "launcher": "torchrun" if "TORCHELASTIC_RUN_ID" in os.environ else "process",
                "master": [os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"]],
            },
            f,
        )
dist.destroy_process_group()
