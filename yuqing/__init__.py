"""yuqing — 文化舆情监测与回应平台: wiring of the CLI, settings and the scheduler."""
