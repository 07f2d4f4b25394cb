"""Training and replay of history.

`datasets` (reading historian files) and `replay` (driving the engine over history) need only
numpy and the standard library: `edgegw backtest` uses them on the gateway itself. `train`,
`export` and `iforest_onnx` need the `train` extra (scikit-learn, skl2onnx, onnx); the daemon
never imports them.
"""
