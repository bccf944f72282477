"""The review room: the supervisors' archive, a session read back, sign-off and the dashboard.

It never imports the bedside room."""
