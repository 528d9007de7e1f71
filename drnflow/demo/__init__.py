"""`drnflow demo`: end-to-end runs on a private, throw-away stack."""
