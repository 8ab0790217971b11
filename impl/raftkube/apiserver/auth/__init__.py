"""Who is asking (authentication), may they (authorization), and what must change or be refused
on the way in (admission)."""
