"""The trade-off frontier: forgetting-control methods swept over their strength, on one GELO-vs-biometric plot."""
