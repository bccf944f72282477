"""Reports read the store and write files: JSON, CSV, FHIR R4 and PDF. No widgets here.

The JSON, CSV and FHIR exports and the import never import Qt, so they run from the command line
and in tests without a QApplication (the PDF report is the one that may need Qt's PDF writer).
"""
