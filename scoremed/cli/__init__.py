"""Command-line front ends; the scripts in ``scripts/`` call ``main()`` of these modules."""
