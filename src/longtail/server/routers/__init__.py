"""The service's routes, one `APIRouter` per area:

    tasks         annotators: lease, answer, release, progress, the label set
    admin         admins: status, rounds, history, annotators, curves, users
    discovery     admins: failure slices, similarity search, the discovery queue, the report
    transfer      admins: label files in and out, labels from other tools
    label_studio  Label Studio's ML-backend protocol (`serve --label-studio`)
    pages         the labeling page, the dashboard, their static files
"""
