"""Summary backends behind one interface, with redaction applied before anything leaves."""
