"""Ad platforms: one package per platform (its wire client and emulator-facing facts), and what they share."""
