"""Scale-out on Ray (the optional extra ``crackal[ray]``): folder prediction and pool scoring as
Ray Data ``map_batches`` over actors that load the model once. Ray is imported only here, and only
when a ``--ray`` job runs."""
