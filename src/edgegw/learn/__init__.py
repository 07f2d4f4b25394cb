"""Learning on the gateway: the schedule (daemon side) and the model store; the training itself is ml/retrain.py."""
