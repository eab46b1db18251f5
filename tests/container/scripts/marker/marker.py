"""A user's script that records what it was given: its arguments, the SM_* variables, and the
package its requirements.txt installed."""

import json
import os
import sys

import shipped_marker  # installed from the wheel that requirements.txt names

with open(os.path.join(os.environ["SM_MODEL_DIR"], "marker.json"), "w") as f:
    json.dump(
        {
            "argv": sys.argv[1:],
            "hps": json.loads(os.environ["SM_HPS"]),
            "training": os.environ["SM_CHANNEL_TRAINING"],
            "hosts": json.loads(os.environ["SM_HOSTS"]),
            "shipped": shipped_marker.VERSION,
        },
        f,
    )
