"""Lead capture: the public intake API (`POST /api/leads`) and Settings → Lead form."""
