"""`train`: the sagemaker-training toolkit calls entry.main, which reads the hyperparameters
(hyperparameters, config), the channels (data), lays out the processes (distributed), runs the
epochs (loop), and writes checkpoints (checkpoints) and the model and reports (artifacts)."""
