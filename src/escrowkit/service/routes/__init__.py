"""One router per resource (DESIGN.md section 9)."""
