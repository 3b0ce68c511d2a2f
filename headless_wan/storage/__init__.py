"""Where finished outputs live: a local folder now, S3-compatible storage for fleets."""
