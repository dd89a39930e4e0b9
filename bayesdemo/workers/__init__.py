"""Layer 4, workers: training and explore jobs in separate processes, the job cap and the queue."""
