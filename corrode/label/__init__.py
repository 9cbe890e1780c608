"""`corrode label`: a keyboard labeler in the browser for several annotators, with agreement statistics."""
