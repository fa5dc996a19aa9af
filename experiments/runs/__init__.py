"""``engage run``: arms driven through the decision engine against the simulated world."""
