"""Learning activity: the events of each enrolment, their projections and their xAPI view."""
