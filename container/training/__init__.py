"""`train`: the sagemaker-training toolkit calls entry.main, which runs the job's own script
(user_script) or the built-in trainer: that reads the hyperparameters (hyperparameters,
config) and the channels (data), lays out the processes (distributed), runs the epochs (loop),
and writes checkpoints (checkpoints) and the model and reports (artifacts)."""
