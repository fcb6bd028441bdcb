"""Who takes which course: self-enrolment, enrolment by staff, status and dates."""
