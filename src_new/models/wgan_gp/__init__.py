"""WGAN-GP over a compressed latent: ``from src_new.models.wgan_gp import WGANGP, build_wgan_gp``."""
from .critic import CodeCritic, Critic
from .encoder import Encoder
from .flow import ConditionalFlowPrior
from .generator import Generator
from .wgan import WGANGP, create_mask


def build_wgan_gp(cfg):
    """Build a WGANGP from a resolved config dict (after auto_complete_config/validate_config)."""
    m = cfg["model"]
    size, channels, cond_dim, latent = tuple(m["image_size"]), m["channels"], m["cond_dim"], m["total_latent_dim"]
    encoder = Encoder(channels, latent, size, dim=m["encoder_dim"], cond_dim=cond_dim, pool=m["encoder_pool"],
                      variational=m["latent_kl"] == "sample")
    generator = Generator(channels, latent, cond_dim, size, dim=m["dim"], dim_mults=m["dim_mults"],
                          res_blocks=m["res_blocks"], bottleneck_res_blocks=m["bottleneck_res_blocks"],
                          upsample=m["upsample"], style_dim=m["style_dim"], mapping_layers=m["mapping_layers"],
                          cond_modulation=m["cond_modulation"], cond_planes=m["cond_planes"] in ("generator", "both"))
    critic = Critic(channels, cond_dim, size, dim=m["critic_dim"], spectral_norm=m["spectral_norm"],
                    cond_mode=m["critic_cond"], minibatch_std_group=m["minibatch_std_group"],
                    condition_head=m["lambda_cond"] > 0, patch_weight=m["critic_patch_weight"],
                    cond_planes=m["cond_planes"] in ("critic", "both"))
    model = WGANGP(encoder, generator, critic, image_size=size, latent_dim=latent, lambda_gp=m["lambda_gp"],
                   n_critic=m["n_critic"], cond_drop_prob=m["cond_drop_prob"],
                   critic_null_condition=m["critic_null_condition"], lambda_ms=m["lambda_ms"],
                   lambda_cond=m["lambda_cond"], lambda_rec=m["lambda_rec"], lambda_latent_kl=m["lambda_latent_kl"],
                   latent_kl=m["latent_kl"],
                   lambda_rec_adv=m["lambda_rec_adv"], lambda_code=m["lambda_code"],
                   code_critic=CodeCritic(latent, cond_dim, m["code_critic_dim"]) if m["lambda_code"] > 0 else None,
                   lambda_euler=m["lambda_euler"], euler_gap=m["euler_gap"],
                   lambda_size=m["lambda_size"],
                   critic_input=m["critic_input"], augment_p=m["augment_p"], augment_policy=m["augment_policy"])
    # The conditional prior p(z | c) over the latent, fitted by training.phase=flow.
    model.flow = ConditionalFlowPrior(latent, cond_dim, num_layers=m["flow_layers"], hidden=m["flow_hidden"])
    return model


__all__ = ["Encoder", "Generator", "Critic", "CodeCritic", "ConditionalFlowPrior", "WGANGP", "build_wgan_gp",
           "create_mask"]
