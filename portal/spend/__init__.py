"""Ad spend: entered by hand or imported from CSV, per day and campaign."""
