"""What the deploy steps share (the MWAA bundle, the Lambda package): standard library only, and
nothing of the dev stack or the demo."""
