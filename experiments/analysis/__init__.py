"""What reads logged data and reports on it: lift, off-policy estimates, figures, MLflow."""
