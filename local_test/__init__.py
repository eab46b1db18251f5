"""Running the image on this machine: MNIST channel folders (prepare_data), /opt/ml trees
(opt_ml), `serve` over loopback (server, load), and the SageMaker SDK's jobs (jobs)."""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
