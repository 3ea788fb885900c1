"""Names of the files a training run writes beside the model (a leaf module: exporting a model needs them, not the
training machinery that writes them)."""

REPORT_FILE = "report.json"  # the data report (chathuman_hf.data.report)
RUN_ARGS_FILE = "run_args.json"  # the run's own arguments (chathuman_hf.publishing.run_output.write_run_args)
LOSS_CURVE_FILE = "loss_curve.png"
