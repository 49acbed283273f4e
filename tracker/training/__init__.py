"""Training of the two-stage tracker (paper Sec. 3.3, 4 and 5.1).

- `samples`: local-model clips (Sec. 3.3) with noisy-frame insertion (step 4);
- `global_samples`: sequences of ground-truth maps for the global model (Sec. 4);
- `losses`: Eq. 2 (local) and Eq. 4 (global);
- `curriculum`: the dilation of the global model's inputs, shrinking on a schedule;
- `feature_cache`: the frozen backbone's pool4 features of prepared clips, for CPU training;
- `loop`: the optimisation loop both trainers share (mixed precision, resuming, early stop);
- `local_trainer`, `global_trainer`: the two training loops;
- `tracked`: clips run through the online tracker (Algorithm 1) for Sec. 5.1 steps 3 and 5;
- `iterative`: the Sec. 5.1 procedure, stage by stage, resumable;
- `weights`: one model's weights between stages;
- `folds`: k-fold splits shared by training and evaluation;
- `sources`: a mix of VOT, DAVIS and synthetic sequences as one training set;
- `hardware`: device, mixed precision and torch.distributed (torchrun) set-up;
- `loss_log`: losses to CSV (and TensorBoard where it is installed).
- `arguments`: the command-line argument groups of training, shared with the ablations.

The command line is `pixtrack train` (`tracker.commands.train`).
"""
