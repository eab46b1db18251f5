"""The image's commands: SageMaker runs `docker run IMAGE train` and `docker run IMAGE serve`;
with no command the image trains, as the current SDK's local container mode starts it.
`combine` makes one model of several that training wrote (container/combine.py)."""

import sys

USAGE = "usage: python -m container {train,serve,combine}"


def train():
    from container.training.entry import train

    train()


def serve():
    from container.serving.model_server import serve

    serve()


def combine():
    from container.combine import main

    main(sys.argv[2:])


COMMANDS = {"train": train, "serve": serve, "combine": combine}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    argv = argv or ["train"]
    if argv[0] not in COMMANDS:
        sys.exit(f"{USAGE}\ncommands: {', '.join(COMMANDS)}")
    COMMANDS[argv[0]]()


if __name__ == "__main__":
    main()
