"""Interactive web demo: upload a panorama, look around it in 360°, ask a query, see the views."""
