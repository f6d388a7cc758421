"""Static reports (HTML + PNG): generic figure and page helpers, and the evaluation report."""
